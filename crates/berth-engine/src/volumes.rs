//! Volumes: the `/volumes` endpoints over berth-volume's [`VolumeStore`], and the volumes
//! of containers.
//!
//! At create, [`Engine::plan_volumes`] resolves everything a container mounts from
//! `HostConfig.Binds` (`/host:/ctr`, `name:/ctr`), `HostConfig.Mounts` (bind, volume, tmpfs),
//! `HostConfig.VolumesFrom` and the image's `Config.Volumes` into the record's `mounts`
//! (inspect's `Mounts`), naming anonymous volumes with 64 random hex digits. Precedence is
//! Docker's: the request's own binds and mounts, then volumes-from, then the image's
//! volumes. Nothing exists until the whole request has been checked; then
//! [`Engine::create_volumes`] creates the volumes missing (undone if the create fails).
//!
//! At start the volumes are taken (a volume with driver options is mounted by berth-volume
//! on its `_data`, the only place besides berth-snapshot where berthd mounts) and an empty
//! volume is filled from the image (copy-up, unless `nocopy`). The runtime then sees every
//! volume as a plain bind mount of its `_data` directory in the OCI spec: the request is
//! rewritten by [`spec_body`] so the spec builder only sees host-path binds and mounts.
//! When the container stops the volumes are released; `rm -v` and `--rm` remove its
//! anonymous volumes. A volume referenced by any container, running or not, cannot be
//! removed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use berth_api_types::Filters;
use berth_api_types::models::{
    ContainerConfig, ContainerCreateBody, HostConfig, Mount as ApiMount, MountBindOptions,
    MountBindOptionsPropagationEnum, MountPoint, MountType, MountVolumeOptions, Volume,
    VolumeCreateRequest, VolumeListResponse, VolumePruneResponse, VolumeScopeEnum,
};
use berth_server::backend::VolumeBackend;
use berth_types::Error;
use berth_volume::{ANONYMOUS_LABEL, CreateOptions, LOCAL_DRIVER, VolumeStore, valid_name};

use crate::engine::Engine;
use crate::record::Record;

/// A volume to create before the container exists (unless it already does).
#[derive(Debug, Clone)]
pub(crate) struct NewVolume {
    name: String,
    opts: CreateOptions,
}

/// What [`Engine::plan_volumes`] found: inspect's mount points and the volumes they need.
#[derive(Debug, Clone, Default)]
pub(crate) struct VolumePlan {
    pub mounts: Vec<MountPoint>,
    volumes: Vec<NewVolume>,
}

fn invalid(m: impl Into<String>) -> Error {
    Error::invalid_parameter(m.into())
}

/// A container path, cleaned and absolute (`/a//b/` → `/a/b`).
fn dest(path: &str, field: &str) -> Result<String, Error> {
    if !path.starts_with('/') {
        return Err(invalid(format!(
            "{field}: invalid mount destination {path:?}: it must be an absolute path"
        )));
    }
    let p = crate::spec::clean_abs(path, field)?;
    if p == Path::new("/") {
        return Err(invalid(format!(
            "{field}: invalid mount destination: it cannot be \"/\""
        )));
    }
    Ok(p.display().to_string())
}

fn check_name(name: &str) -> Result<(), Error> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(berth_volume::Error::InvalidName {
            name: name.to_string(),
        }
        .into())
    }
}

fn random_name() -> String {
    berth_types::ContainerId::generate().as_str().to_string()
}

fn anonymous_opts() -> CreateOptions {
    let mut opts = CreateOptions::default();
    opts.labels
        .insert(ANONYMOUS_LABEL.to_string(), String::new());
    opts
}

/// `HostConfig.Binds[i]`: `(source, destination, mode)`.
fn split_bind(bind: &str, field: &str) -> Result<(String, String, String), Error> {
    let parts: Vec<&str> = bind.split(':').collect();
    let bad = || invalid(format!("{field}: invalid volume specification: '{bind}'"));
    let (s, d, m) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad()),
    };
    if s.is_empty() || d.is_empty() {
        return Err(bad());
    }
    Ok((s.to_string(), d.to_string(), m.to_string()))
}

/// The mode of a named volume in `Binds`: whether read-write, and whether `nocopy`.
fn volume_mode(mode: &str, field: &str) -> Result<(bool, bool), Error> {
    let (mut rw, mut nocopy, mut saw_rw) = (true, false, false);
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" | "rw" if !saw_rw => {
                rw = opt == "rw";
                saw_rw = true;
            }
            "nocopy" if !nocopy => nocopy = true,
            "z" | "Z" => {}
            _ => return Err(invalid(format!("{field}: invalid mode: {mode}"))),
        }
    }
    Ok((rw, nocopy))
}

fn propagation_of(mode: &str) -> String {
    mode.split(',')
        .find(|o| {
            matches!(
                *o,
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            )
        })
        .unwrap_or("rprivate")
        .to_string()
}

fn propagation_enum(p: &str) -> MountBindOptionsPropagationEnum {
    match p {
        "private" => MountBindOptionsPropagationEnum::PRIVATE,
        "shared" => MountBindOptionsPropagationEnum::SHARED,
        "rshared" => MountBindOptionsPropagationEnum::RSHARED,
        "slave" => MountBindOptionsPropagationEnum::SLAVE,
        "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
        _ => MountBindOptionsPropagationEnum::RPRIVATE,
    }
}

fn volume_point(store: &VolumeStore, name: &str, dest: String, rw: bool, mode: &str) -> MountPoint {
    MountPoint {
        typ: Some("volume".into()),
        name: Some(name.to_string()),
        source: Some(store.dir().join(name).join("_data").display().to_string()),
        destination: Some(dest),
        driver: Some(LOCAL_DRIVER.into()),
        mode: Some(mode.to_string()),
        rw: Some(rw),
        propagation: Some(String::new()),
    }
}

/// `HostConfig.Mounts[i]` of type volume: the volume to create and its mount point.
fn mount_volume(
    store: &VolumeStore,
    m: &ApiMount,
    field: &str,
) -> Result<(MountPoint, NewVolume), Error> {
    let target = dest(
        m.target.as_deref().unwrap_or(""),
        &format!("{field}.Target"),
    )?;
    if m.bind_options.is_some() {
        return Err(invalid(format!(
            "{field}.BindOptions: must not be given for type \"volume\""
        )));
    }
    if m.tmpfs_options.is_some() {
        return Err(invalid(format!(
            "{field}.TmpfsOptions: must not be given for type \"volume\""
        )));
    }
    let vo: MountVolumeOptions = m.volume_options.clone().unwrap_or_default();
    if vo.subpath.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(invalid(format!(
            "{field}.VolumeOptions.Subpath: volume subpaths are not supported yet"
        )));
    }
    let source = m.source.as_deref().unwrap_or("");
    let (name, mut opts) = if source.is_empty() {
        (random_name(), anonymous_opts())
    } else {
        check_name(source)?;
        (source.to_string(), CreateOptions::default())
    };
    opts.name = Some(name.clone());
    opts.labels.extend(vo.labels.clone().unwrap_or_default());
    if let Some(dc) = &vo.driver_config {
        if let Some(d) = dc
            .name
            .as_deref()
            .filter(|d| !d.is_empty() && *d != LOCAL_DRIVER)
        {
            return Err(invalid(format!(
                "{field}.VolumeOptions.DriverConfig.Name: volume driver {d:?} is not supported (berth has \"local\")"
            )));
        }
        opts.driver_opts
            .extend(dc.options.clone().unwrap_or_default());
    }
    // Options are checked now, before anything exists.
    berth_volume::options::parse(&name, &opts.driver_opts)?;
    let rw = !m.read_only.unwrap_or(false);
    Ok((
        volume_point(store, &name, target, rw, "z"),
        NewVolume { name, opts },
    ))
}

/// Rewrites a container's create request for the spec builder: named and anonymous
/// volumes and what `VolumesFrom` brought become bind mounts of host directories (the
/// volumes' `_data`), so the spec only holds mounts the runtime makes itself. When only
/// validating (`validate_only`, at create, before the volumes exist), each becomes a tmpfs
/// at the same destination, which checks destinations and duplicates all the same.
pub(crate) fn spec_body(rec: &Record, body: &mut ContainerCreateBody, validate_only: bool) {
    body.volumes = None;
    let Some(hc) = body.host_config.as_mut() else {
        return;
    };
    hc.volumes_from = None;
    let mut own: HashSet<String> = HashSet::new();
    let mut binds = Vec::new();
    for b in hc.binds.take().unwrap_or_default() {
        let mut parts = b.split(':');
        let src = parts.next().unwrap_or("");
        if src.starts_with('/') {
            if let Some(d) = parts.next().and_then(|d| dest(d, "").ok()) {
                own.insert(d);
            }
            binds.push(b);
        }
    }
    hc.binds = (!binds.is_empty()).then_some(binds);
    let mut mounts = Vec::new();
    for m in hc.mounts.take().unwrap_or_default() {
        if m.typ != Some(MountType::VOLUME) {
            if let Some(d) = m.target.as_deref().and_then(|d| dest(d, "").ok()) {
                own.insert(d);
            }
            mounts.push(m);
        }
    }
    for mp in &rec.mounts {
        let typ = mp.typ.as_deref().unwrap_or("");
        let d = mp.destination.clone().unwrap_or_default();
        if !(typ == "volume" || typ == "bind" && !own.contains(&d)) {
            continue;
        }
        let rw = mp.rw.unwrap_or(true);
        mounts.push(if validate_only {
            ApiMount {
                target: Some(d),
                typ: Some(MountType::TMPFS),
                read_only: Some(!rw),
                ..Default::default()
            }
        } else {
            ApiMount {
                target: Some(d),
                source: mp.source.clone(),
                typ: Some(MountType::BIND),
                read_only: Some(!rw),
                bind_options: Some(MountBindOptions {
                    propagation: Some(propagation_enum(mp.propagation.as_deref().unwrap_or(""))),
                    ..Default::default()
                }),
                ..Default::default()
            }
        });
    }
    hc.mounts = (!mounts.is_empty()).then_some(mounts);
}

/// The names of the volumes a record mounts.
fn volume_names(rec: &Record) -> impl Iterator<Item = &str> {
    rec.mounts
        .iter()
        .filter(|m| m.typ.as_deref() == Some("volume"))
        .filter_map(|m| m.name.as_deref())
}

/// The API's view of a stored volume.
fn api_volume(v: berth_volume::Volume) -> Volume {
    Volume {
        name: v.name,
        driver: v.driver,
        mountpoint: v.mountpoint.display().to_string(),
        created_at: Some(v.created_at),
        status: None,
        labels: v.labels.into_iter().collect(),
        scope: Some(VolumeScopeEnum::LOCAL),
        cluster_volume: None,
        options: v.options.into_iter().collect(),
        usage_data: None,
    }
}

impl Engine {
    pub(crate) fn volumes(&self) -> &VolumeStore {
        &self.inner.volumes
    }

    /// The ids of the containers (running or not) whose mounts name volume `name`.
    pub(crate) fn volume_users(&self, name: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .all()
            .into_iter()
            .filter(|c| volume_names(&c.record()).any(|n| n == name))
            .map(|c| c.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Every volume name some container references.
    fn volumes_in_use(&self) -> HashSet<String> {
        self.all()
            .into_iter()
            .flat_map(|c| {
                volume_names(&c.record())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Resolves the mounts of a container being created (see the module docs). Creates
    /// nothing; bad input is refused naming the field.
    pub(crate) fn plan_volumes(
        &self,
        config: &ContainerConfig,
        hc: &HostConfig,
    ) -> Result<VolumePlan, Error> {
        let store = self.volumes();
        let mut plan = VolumePlan::default();
        let mut taken: BTreeSet<String> = BTreeSet::new();
        for (i, b) in hc.binds.iter().flatten().enumerate() {
            let field = format!("HostConfig.Binds[{i}]");
            let (src, d, mode) = split_bind(b, &field)?;
            let d = dest(&d, &field)?;
            taken.insert(d.clone());
            if src.starts_with('/') {
                let rw = !mode.split(',').any(|m| m == "ro");
                plan.mounts.push(MountPoint {
                    typ: Some("bind".into()),
                    name: None,
                    source: Some(src),
                    destination: Some(d),
                    driver: None,
                    mode: Some(mode.clone()),
                    rw: Some(rw),
                    propagation: Some(propagation_of(&mode)),
                });
            } else {
                check_name(&src)?;
                let (rw, _) = volume_mode(&mode, &field)?;
                let shown = if mode.is_empty() { "z" } else { mode.as_str() };
                plan.mounts.push(volume_point(store, &src, d, rw, shown));
                plan.volumes.push(NewVolume {
                    name: src.clone(),
                    opts: CreateOptions {
                        name: Some(src),
                        ..Default::default()
                    },
                });
            }
        }
        for (i, m) in hc.mounts.iter().flatten().enumerate() {
            let field = format!("HostConfig.Mounts[{i}]");
            let Some(target) = m.target.as_deref().filter(|t| !t.is_empty()) else {
                return Err(invalid(format!("{field}.Target: must not be empty")));
            };
            let d = dest(target, &format!("{field}.Target"))?;
            taken.insert(d.clone());
            let rw = !m.read_only.unwrap_or(false);
            match m.typ {
                Some(MountType::VOLUME) => {
                    let (mp, nv) = mount_volume(store, m, &field)?;
                    plan.mounts.push(mp);
                    plan.volumes.push(nv);
                }
                Some(MountType::BIND) => {
                    let prop = match m.bind_options.as_ref().and_then(|b| b.propagation) {
                        None | Some(MountBindOptionsPropagationEnum::EMPTY) => "rprivate".into(),
                        Some(p) => p.to_string(),
                    };
                    plan.mounts.push(MountPoint {
                        typ: Some("bind".into()),
                        source: m.source.clone(),
                        destination: Some(d),
                        mode: Some(String::new()),
                        rw: Some(rw),
                        propagation: Some(prop),
                        ..Default::default()
                    });
                }
                Some(MountType::TMPFS) => plan.mounts.push(MountPoint {
                    typ: Some("tmpfs".into()),
                    source: Some(String::new()),
                    destination: Some(d),
                    mode: Some(String::new()),
                    rw: Some(rw),
                    propagation: Some(String::new()),
                    ..Default::default()
                }),
                // The spec builder refuses the other types with the field's name.
                _ => {}
            }
        }
        for (i, from) in hc.volumes_from.iter().flatten().enumerate() {
            let field = format!("HostConfig.VolumesFrom[{i}]");
            let (name, mode) = match from.split_once(':') {
                Some((n, m)) => (n, Some(m)),
                None => (from.as_str(), None),
            };
            let rw_override = match mode {
                None => None,
                Some("rw") => Some(true),
                Some("ro") => Some(false),
                Some(m) => {
                    return Err(invalid(format!(
                        "{field}: invalid mode for volumes-from: {m:?} (ro or rw)"
                    )));
                }
            };
            // A 400, not a 404: clients read a 404 from create as a missing image.
            let src = self
                .lookup(name)
                .map_err(|e| invalid(format!("{field}: {}", e.message())))?
                .record();
            for mp in &src.mounts {
                let d = mp.destination.clone().unwrap_or_default();
                if !matches!(mp.typ.as_deref(), Some("volume" | "bind")) || taken.contains(&d) {
                    continue;
                }
                let mut mp = mp.clone();
                if let Some(rw) = rw_override {
                    mp.rw = Some(rw);
                    mp.mode = Some(if rw { "rw" } else { "ro" }.into());
                }
                taken.insert(d);
                plan.mounts.push(mp);
            }
        }
        let mut image_vols: Vec<&String> = config.volumes.iter().flatten().collect();
        image_vols.sort();
        for path in image_vols {
            let d = dest(path, &format!("Config.Volumes[{path:?}]"))?;
            if !taken.insert(d.clone()) {
                continue;
            }
            let name = random_name();
            let mut opts = anonymous_opts();
            opts.name = Some(name.clone());
            plan.mounts.push(volume_point(store, &name, d, true, ""));
            plan.volumes.push(NewVolume { name, opts });
        }
        Ok(plan)
    }

    /// Creates the volumes of `plan` that do not exist yet; returns their names (for
    /// [`Engine::remove_new_volumes`] if the create fails later). A failure removes the
    /// ones it made.
    pub(crate) fn create_volumes(&self, plan: &VolumePlan) -> Result<Vec<String>, Error> {
        let store = self.volumes();
        let mut made = Vec::new();
        for nv in &plan.volumes {
            match store.inspect(&nv.name) {
                Ok(_) => continue,
                Err(berth_volume::Error::NotFound { .. }) => {}
                Err(e) => {
                    self.remove_new_volumes(&made);
                    return Err(e.into());
                }
            }
            match store.create(&nv.opts) {
                Ok(v) => {
                    self.volume_event("create", &v.name);
                    made.push(v.name);
                }
                Err(e) => {
                    self.remove_new_volumes(&made);
                    return Err(e.into());
                }
            }
        }
        Ok(made)
    }

    /// Removes volumes made for a create that failed.
    pub(crate) fn remove_new_volumes(&self, names: &[String]) {
        for n in names {
            if let Err(e) = self.volumes().remove(n, &[], true) {
                tracing::warn!(volume = %n, "undoing a volume create: {e}");
            }
        }
    }

    /// Takes the container's volumes before it starts (a volume with options is mounted),
    /// and fills empty ones from the image at `rootfs` unless the mount says `nocopy`.
    pub(crate) fn take_volumes(&self, rec: &Record, rootfs: &Path) -> Result<(), Error> {
        let store = self.volumes();
        let nocopy_mounts: HashSet<String> = rec
            .host_config
            .mounts
            .iter()
            .flatten()
            .filter(|m| m.typ == Some(MountType::VOLUME))
            .filter(|m| {
                m.volume_options
                    .as_ref()
                    .and_then(|o| o.no_copy)
                    .unwrap_or(false)
            })
            .filter_map(|m| m.target.as_deref().and_then(|t| dest(t, "").ok()))
            .collect();
        for mp in rec
            .mounts
            .iter()
            .filter(|m| m.typ.as_deref() == Some("volume"))
        {
            let (Some(name), Some(d)) = (mp.name.as_deref(), mp.destination.as_deref()) else {
                continue;
            };
            store.mount(name, &rec.id)?;
            let nocopy = mp
                .mode
                .as_deref()
                .is_some_and(|m| m.split(',').any(|o| o == "nocopy"))
                || nocopy_mounts.contains(d);
            if !nocopy && store.copy_up(name, rootfs, d)? {
                tracing::info!(volume = name, container = %rec.id, path = d, "volume filled from the image");
            }
        }
        Ok(())
    }

    /// Lets go of the container's volumes once it no longer runs (the last holder of a
    /// volume with options unmounts it).
    pub(crate) fn release_volumes(&self, id: &str) {
        let Ok(ctr) = self.lookup(id) else { return };
        let rec = ctr.record();
        for name in volume_names(&rec) {
            match self.volumes().release(name, id) {
                Ok(()) | Err(berth_volume::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!(volume = name, container = id, "releasing volume: {e}"),
            }
        }
    }

    /// After `rm -v` (and `--rm`): removes the container's anonymous volumes no other
    /// container references. Named volumes stay, as in Docker.
    pub(crate) fn remove_anonymous_volumes(&self, rec: &Record) {
        let store = self.volumes();
        for name in volume_names(rec) {
            let Ok(v) = store.inspect(name) else { continue };
            if !v.is_anonymous() {
                continue;
            }
            let users = self.volume_users(name);
            match store.remove(name, &users, true) {
                Ok(()) => self.volume_event("destroy", name),
                Err(e) => tracing::warn!(volume = name, "removing anonymous volume: {e}"),
            }
        }
    }

    /// Drops mount holders that died while berthd was away, at start.
    pub(crate) fn reconcile_volumes(&self) {
        let alive: HashSet<String> = self
            .all()
            .into_iter()
            .filter(|c| c.record().state.status.is_alive())
            .map(|c| c.id.clone())
            .collect();
        if let Err(e) = self.volumes().reconcile(&|id| alive.contains(id)) {
            tracing::warn!("reconciling volumes: {e}");
        }
    }

    fn volume_event(&self, action: &str, name: &str) {
        let mut attrs = BTreeMap::new();
        attrs.insert("driver".to_string(), LOCAL_DRIVER.to_string());
        self.inner
            .events
            .publish("volume", action.to_string(), name.to_string(), attrs);
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
    }
}

impl VolumeBackend for Engine {
    async fn volume_list(&self, filters: Filters) -> Result<VolumeListResponse, Error> {
        self.blocking(move |e| {
            let used = e.volumes_in_use();
            let vols = e.volumes().list(&filters.0, &|n| used.contains(n))?;
            Ok(VolumeListResponse {
                volumes: Some(vols.into_iter().map(api_volume).collect()),
                warnings: Some(Vec::new()),
            })
        })
        .await
    }

    async fn volume_create(&self, req: VolumeCreateRequest) -> Result<Volume, Error> {
        self.blocking(move |e| {
            let opts = CreateOptions {
                name: req.name.filter(|n| !n.is_empty()),
                driver: req.driver,
                driver_opts: req.driver_opts.unwrap_or_default().into_iter().collect(),
                labels: req.labels.unwrap_or_default().into_iter().collect(),
            };
            let existed = opts
                .name
                .as_deref()
                .is_some_and(|n| e.volumes().inspect(n).is_ok());
            let v = e.volumes().create(&opts)?;
            if !existed {
                e.volume_event("create", &v.name);
            }
            Ok(api_volume(v))
        })
        .await
    }

    async fn volume_inspect(&self, name: &str) -> Result<Volume, Error> {
        let name = name.to_string();
        self.blocking(move |e| Ok(api_volume(e.volumes().inspect(&name)?)))
            .await
    }

    async fn volume_remove(&self, name: &str, force: bool) -> Result<(), Error> {
        let name = name.to_string();
        self.blocking(move |e| {
            let users = e.volume_users(&name);
            let existed = e.volumes().inspect(&name).is_ok();
            e.volumes().remove(&name, &users, force)?;
            if existed {
                e.volume_event("destroy", &name);
            }
            Ok(())
        })
        .await
    }

    async fn volume_prune(&self, filters: Filters) -> Result<VolumePruneResponse, Error> {
        self.blocking(move |e| {
            let used = e.volumes_in_use();
            let r = e.volumes().prune(&filters.0, &|n| used.contains(n))?;
            for n in &r.volumes_deleted {
                e.volume_event("destroy", n);
            }
            Ok(VolumePruneResponse {
                volumes_deleted: Some(r.volumes_deleted),
                space_reclaimed: Some(i64::try_from(r.space_reclaimed).unwrap_or(i64::MAX)),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn binds_and_modes() {
        assert_eq!(
            split_bind("data:/d:ro", "f").unwrap(),
            ("data".into(), "/d".into(), "ro".into())
        );
        for bad in ["/only", "a:b:c:d", ":/x", "x:"] {
            let e = split_bind(bad, "HostConfig.Binds[0]").unwrap_err();
            assert!(e.message().contains("HostConfig.Binds[0]"), "{bad}");
            assert!(
                e.message().contains("invalid volume specification"),
                "{bad}"
            );
        }
        assert_eq!(volume_mode("", "f").unwrap(), (true, false));
        assert_eq!(volume_mode("ro,nocopy", "f").unwrap(), (false, true));
        assert_eq!(volume_mode("z", "f").unwrap(), (true, false));
        assert!(volume_mode("ro,rw", "f").is_err());
        assert!(
            volume_mode("rshared", "f")
                .unwrap_err()
                .message()
                .contains("invalid mode")
        );
        assert_eq!(dest("/a//b/", "f").unwrap(), "/a/b");
        assert!(dest("a", "f").unwrap_err().message().contains("absolute"));
        assert!(dest("/", "f").is_err());
        assert_eq!(propagation_of("ro,rslave"), "rslave");
        assert_eq!(propagation_of(""), "rprivate");
    }

    #[test]
    fn spec_body_turns_volumes_into_binds() {
        let hc = HostConfig {
            binds: Some(vec!["/host:/h".into(), "data:/d:ro".into()]),
            mounts: Some(vec![ApiMount {
                typ: Some(MountType::VOLUME),
                target: Some("/m".into()),
                ..Default::default()
            }]),
            volumes_from: Some(vec!["other".into()]),
            ..Default::default()
        };
        let point = |typ: &str, src: &str, d: &str, rw: bool| MountPoint {
            typ: Some(typ.into()),
            source: Some(src.into()),
            destination: Some(d.into()),
            rw: Some(rw),
            ..Default::default()
        };
        let rec_json = serde_json::json!({
            "id": "x", "name": "/x", "created": "", "path": "sh", "args": [],
            "config": {}, "host_config": hc, "image": "", "image_name": "",
            "state": {"status": "created"}, "snapshot_key": "", "log_path": "",
            "hostname_path": "", "hosts_path": "", "resolv_conf_path": "",
            "mounts": [
                point("bind", "/host", "/h", true),
                point("volume", "/v/data/_data", "/d", false),
                point("volume", "/v/m/_data", "/m", true),
                point("bind", "/elsewhere", "/from", true),
            ],
        });
        let rec: Record = serde_json::from_value(rec_json).unwrap();
        let mut body = ContainerCreateBody {
            volumes: Some(vec!["/img".into()]),
            host_config: Some(hc),
            ..Default::default()
        };
        spec_body(&rec, &mut body, false);
        assert!(body.volumes.is_none());
        let hc = body.host_config.unwrap();
        assert!(hc.volumes_from.is_none());
        assert_eq!(hc.binds.unwrap(), ["/host:/h"]);
        let mounts = hc.mounts.unwrap();
        let got: Vec<(Option<&str>, Option<&str>, Option<bool>)> = mounts
            .iter()
            .map(|m| (m.source.as_deref(), m.target.as_deref(), m.read_only))
            .collect();
        assert_eq!(
            got,
            [
                (Some("/v/data/_data"), Some("/d"), Some(true)),
                (Some("/v/m/_data"), Some("/m"), Some(false)),
                (Some("/elsewhere"), Some("/from"), Some(false)),
            ]
        );
        assert!(mounts.iter().all(|m| m.typ == Some(MountType::BIND)));
    }
}
