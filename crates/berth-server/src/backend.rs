//! What the HTTP layer needs from the daemon. The engine implements these traits; this crate
//! never imports it, and its own tests use a small in-memory fake.
//!
//! Every method returns the daemon-wide [`Error`], whose kind decides the HTTP status. Query
//! parameters arrive parsed and checked (filters are valid JSON naming known filters; times
//! are Unix nanoseconds); the wire format of streams (JSON lines, stdcopy frames, log
//! timestamps) is this crate's business, so backends hand over typed items.

use std::future::Future;
use std::pin::Pin;

use berth_api_types::models::*;
use berth_api_types::{Filters, query};
use berth_types::Error;
use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite};

/// A stream of raw byte chunks (a request body being uploaded, e.g. an image tarball).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A stream of typed items; an `Err` ends the stream and is reported in-band when the
/// response has already started.
pub type ItemStream<T> = Pin<Box<dyn Stream<Item = Result<T, Error>> + Send>>;

/// One line of `POST /images/load`'s answer: `{"stream":"Loaded image: busybox:latest\n"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoadLine {
    /// The text, newline-terminated.
    pub stream: String,
}

/// A registered wait: resolves when the condition is met.
pub type WaitFuture = Pin<Box<dyn Future<Output = Result<ContainerWaitResponse, Error>> + Send>>;

/// A hijacked client connection: raw bytes both ways (for a tty container the bytes are the
/// terminal's; otherwise output is written in stdcopy frames, see
/// [`berth_api_types::stdcopy`], and input is raw).
pub trait Conn: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Conn for T {}

/// A boxed hijacked connection.
pub type BoxConn = Box<dyn Conn>;

/// A streaming session over a hijacked connection (attach, exec start). It is created before
/// the hijack, so errors (no such container, not running) still become normal HTTP
/// responses; it runs after the response head has been written.
pub trait Session: Send + 'static {
    /// Whether the stream is raw (tty) rather than stdcopy-multiplexed.
    fn tty(&self) -> bool;
    /// Serves the connection until the process exits, the client detaches or leaves.
    fn run(self: Box<Self>, conn: BoxConn) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Options of `GET /containers/{id}/logs`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsOptions {
    /// Keep streaming new output until the container stops.
    pub follow: bool,
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Only entries at or after this Unix time (nanoseconds).
    pub since_ns: Option<i128>,
    /// Only entries before this Unix time (nanoseconds).
    pub until_ns: Option<i128>,
    /// Only the last N lines (`None`: all).
    pub tail: Option<usize>,
}

/// Which output stream a log entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One log entry: usually a line including its `\n` (a partial line when the process wrote
/// one before exiting or at the log driver's size limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Where it came from.
    pub stream: LogStream,
    /// When it was written (Unix nanoseconds), shown with `timestamps=1`.
    pub time_ns: i128,
    /// The bytes.
    pub data: Bytes,
}

/// A container's logs: whether it has a tty (then the stream is sent raw, without stdcopy
/// frames) and the entries.
pub struct Logs {
    /// The container was created with a tty.
    pub tty: bool,
    /// The entries, ending when done (at once without `follow`).
    pub entries: ItemStream<LogEntry>,
}

/// Parameters of `POST /containers/create`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateOptions {
    /// The `name` query parameter (empty means "generate one").
    pub name: Option<String>,
    /// The `platform` query parameter (only `linux[/arch]` passes the HTTP layer).
    pub platform: Option<String>,
}

/// `POST /images/create?fromSrc=-`: a tarball import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Repository to tag the result with (`repo`).
    pub repo: Option<String>,
    /// Tag (`tag`).
    pub tag: Option<String>,
    /// Commit message (`message`).
    pub message: Option<String>,
    /// Dockerfile instructions to apply (`changes`, repeated).
    pub changes: Vec<String>,
    /// Target platform (`platform`).
    pub platform: Option<String>,
}

/// `POST /commit`: a new image from a container's changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitOptions {
    /// The container (`container`): id, prefix or name.
    pub container: String,
    /// Repository to tag the result with (`repo`).
    pub repo: Option<String>,
    /// Tag (`tag`).
    pub tag: Option<String>,
    /// Commit message (`comment`).
    pub comment: Option<String>,
    /// Author (`author`).
    pub author: Option<String>,
    /// Pause the container while its changes are read (`pause`, default true).
    pub pause: bool,
    /// Dockerfile instructions to apply (`changes`, repeated).
    pub changes: Vec<String>,
    /// The request body: a container config whose set fields override the container's.
    pub config: Option<ContainerConfig>,
}

/// `PUT /containers/{id}/archive`: where and how an uploaded tar is extracted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchivePutOptions {
    /// The directory in the container to extract into (`path`), absolute.
    pub path: String,
    /// Refuse to replace a directory by a non-directory or the reverse
    /// (`noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Keep the archive's owners (`copyUIDGID`, `docker cp -a`); otherwise everything is
    /// owned by the container's root.
    pub copy_uid_gid: bool,
}

/// `POST /images/create?fromImage=…`: a pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullOptions {
    /// The image (`fromImage`), possibly with a tag or digest.
    pub image: String,
    /// The tag (`tag`), or a digest.
    pub tag: Option<String>,
    /// Target platform (`platform`).
    pub platform: Option<String>,
    /// The base64 `X-Registry-Auth` header, when sent.
    pub registry_auth: Option<String>,
}

/// Options of `POST /berth/images/bootstrap`, berth's own endpoint: a base image made from
/// the host's packages (like an LXC template).
#[derive(Debug, Clone, Default)]
pub struct BootstrapOptions {
    /// `busybox` or `debian`.
    pub template: String,
    /// The reference to tag the image with (`busybox:latest`).
    pub reference: Option<String>,
    /// Debian suite (`bookworm`) for the debian template.
    pub suite: Option<String>,
    /// Debian mirror URL for the debian template.
    pub mirror: Option<String>,
}

/// The system endpoints.
pub trait SystemBackend: Send + Sync + 'static {
    /// `GET /version`. Also gives the `Server` header its version.
    fn version(&self) -> SystemVersion;
    /// `GET /info`.
    fn info(&self) -> impl Future<Output = Result<SystemInfo, Error>> + Send;
    /// `GET /events`: past events from `since` then live ones; the stream ends at `until`
    /// (Unix ns) or never. Filters are checked to be known names; matching is the backend's.
    fn events(
        &self,
        since_ns: Option<i128>,
        until_ns: Option<i128>,
        filters: Filters,
    ) -> Result<ItemStream<EventMessage>, Error>;
    /// `GET /system/df`: `LayersSize`, `Images`, `Containers`, `Volumes` and `BuildCache` as
    /// one JSON object; `types` (`container`, `image`, `volume`, `build-cache`; empty for all)
    /// selects what is computed.
    fn disk_usage(
        &self,
        types: Vec<String>,
    ) -> impl Future<Output = Result<serde_json::Value, Error>> + Send {
        async move {
            let _ = types;
            Err(Error::not_implemented("disk usage is not implemented"))
        }
    }
}

/// The container endpoints. `id` is whatever the client sent: a full id, a unique prefix or
/// a name; resolving it (and answering "no such container: x") is the backend's.
pub trait ContainerBackend: Send + Sync + 'static {
    /// `POST /containers/create`. `raw` is the request body as JSON, for checks on which
    /// fields were set explicitly. Unknown fields were already refused.
    fn create(
        &self,
        opts: CreateOptions,
        body: ContainerCreateBody,
        raw: serde_json::Value,
    ) -> impl Future<Output = Result<ContainerCreateResponse, Error>> + Send;
    /// `GET /containers/json`; filters are checked to be known names.
    fn list(
        &self,
        q: query::ContainerList,
        filters: Filters,
    ) -> impl Future<Output = Result<Vec<ContainerSummary>, Error>> + Send;
    /// `GET /containers/{id}/json`.
    fn inspect(
        &self,
        id: &str,
        size: bool,
    ) -> impl Future<Output = Result<ContainerInspectResponse, Error>> + Send;
    /// `POST /containers/{id}/start`; `Ok(false)` when it was already running (304).
    fn start(&self, id: &str) -> impl Future<Output = Result<bool, Error>> + Send;
    /// `POST /containers/{id}/stop`; `Ok(false)` when it was not running (304).
    fn stop(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
    /// `POST /containers/{id}/restart`.
    fn restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// `POST /containers/{id}/kill` (default signal SIGKILL).
    fn kill(
        &self,
        id: &str,
        signal: Option<String>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// `POST /containers/{id}/pause`.
    fn pause(&self, id: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// `POST /containers/{id}/unpause`.
    fn unpause(&self, id: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// `POST /containers/{id}/wait`: registers the wait *before returning* (the response
    /// head is sent right after, and clients start the container once they see it) and
    /// returns a future resolving when `condition` (`not-running` when `None`, `next-exit`,
    /// `removed`) is met.
    fn wait(
        &self,
        id: &str,
        condition: Option<String>,
    ) -> impl Future<Output = Result<WaitFuture, Error>> + Send;
    /// `DELETE /containers/{id}`.
    fn remove(
        &self,
        id: &str,
        force: bool,
        volumes: bool,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// `GET /containers/{id}/logs`.
    fn logs(&self, id: &str, opts: LogsOptions)
    -> impl Future<Output = Result<Logs, Error>> + Send;
    /// `POST /containers/{id}/attach`: a session for the hijacked connection. The query says
    /// which streams, whether to replay logs first, and the detach keys.
    fn attach(
        &self,
        id: &str,
        q: query::ContainerAttach,
    ) -> impl Future<Output = Result<Box<dyn Session>, Error>> + Send;
    /// `POST /containers/{id}/resize` (the tty's rows and columns).
    fn resize(
        &self,
        id: &str,
        height: u16,
        width: u16,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// `GET /containers/{id}/top`.
    fn top(
        &self,
        id: &str,
        ps_args: Option<String>,
    ) -> impl Future<Output = Result<ContainerTopResponse, Error>> + Send;
    /// `GET /containers/{id}/stats`: one sample (`stream=false`; `one_shot` skips the
    /// second sample that fills `precpu_stats`) or one per second until the client leaves.
    fn stats(
        &self,
        id: &str,
        stream: bool,
        one_shot: bool,
    ) -> impl Future<Output = Result<ItemStream<ContainerStatsResponse>, Error>> + Send;
    /// `POST /containers/{id}/rename`.
    fn rename(&self, id: &str, name: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// `POST /containers/{id}/update`; `raw` as for [`ContainerBackend::create`].
    fn update(
        &self,
        id: &str,
        body: ContainerUpdateBody,
        raw: serde_json::Value,
    ) -> impl Future<Output = Result<ContainerUpdateResponse, Error>> + Send;
    /// `GET /containers/{id}/changes`: what the container changed in its file system, sorted
    /// by path.
    fn changes(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<FilesystemChange>, Error>> + Send {
        let _ = id;
        async {
            Err(Error::not_implemented(
                "container changes are not supported",
            ))
        }
    }
    /// `GET /containers/{id}/export`: the container's whole file system as a tar stream.
    fn export(&self, id: &str) -> impl Future<Output = Result<ByteStream, Error>> + Send {
        let _ = id;
        async { Err(Error::not_implemented("container export is not supported")) }
    }
    /// `HEAD /containers/{id}/archive?path=`: what `path` is in the container.
    fn archive_stat(
        &self,
        id: &str,
        path: &str,
    ) -> impl Future<Output = Result<berth_api_types::archive::ContainerPathStat, Error>> + Send
    {
        let _ = (id, path);
        async {
            Err(Error::not_implemented(
                "container archives are not supported",
            ))
        }
    }
    /// `GET /containers/{id}/archive?path=`: `path` as a tar stream, with its stat.
    fn archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> impl Future<
        Output = Result<(berth_api_types::archive::ContainerPathStat, ByteStream), Error>,
    > + Send {
        let _ = (id, path);
        async {
            Err(Error::not_implemented(
                "container archives are not supported",
            ))
        }
    }
    /// `PUT /containers/{id}/archive?path=`: extracts the tar in `body` into a directory.
    fn archive_put(
        &self,
        id: &str,
        opts: ArchivePutOptions,
        body: ByteStream,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (id, opts, body);
        async {
            Err(Error::not_implemented(
                "container archives are not supported",
            ))
        }
    }
    /// `POST /commit`: a new image from the container's changes; returns its id.
    fn commit(
        &self,
        opts: CommitOptions,
    ) -> impl Future<Output = Result<IdResponse, Error>> + Send {
        let _ = opts;
        async { Err(Error::not_implemented("commit is not supported")) }
    }
    /// `POST /containers/prune`; filters `until`, `label`, `label!` only.
    fn prune(
        &self,
        filters: Filters,
    ) -> impl Future<Output = Result<ContainerPruneResponse, Error>> + Send;
}

/// The exec endpoints.
pub trait ExecBackend: Send + Sync + 'static {
    /// `POST /containers/{id}/exec`.
    fn exec_create(
        &self,
        container: &str,
        body: ExecConfig,
    ) -> impl Future<Output = Result<IdResponse, Error>> + Send;
    /// `POST /exec/{id}/start`: with `Detach`, starts the process and returns `None`;
    /// otherwise a session to run on the hijacked connection.
    fn exec_start(
        &self,
        id: &str,
        body: ExecStartConfig,
    ) -> impl Future<Output = Result<Option<Box<dyn Session>>, Error>> + Send;
    /// `POST /exec/{id}/resize`.
    fn exec_resize(
        &self,
        id: &str,
        height: u16,
        width: u16,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// `GET /exec/{id}/json`.
    fn exec_inspect(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<ExecInspectResponse, Error>> + Send;
}

/// The image endpoints. `name` is a reference, an id or an id prefix, as the client sent it.
pub trait ImageBackend: Send + Sync + 'static {
    /// `GET /images/json`; filters are checked to be known names.
    fn image_list(
        &self,
        q: query::ImageList,
        filters: Filters,
    ) -> impl Future<Output = Result<Vec<ImageSummary>, Error>> + Send;
    /// `GET /images/{name}/json`.
    fn image_inspect(&self, name: &str)
    -> impl Future<Output = Result<ImageInspect, Error>> + Send;
    /// `GET /images/{name}/json` as sent: [`ImageBackend::image_inspect`] plus fields the
    /// API version has but the model lacks (`Parent`, `DockerVersion`).
    fn image_inspect_json(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<serde_json::Value, Error>> + Send {
        async move {
            let v = self.image_inspect(name).await?;
            serde_json::to_value(v).map_err(|e| Error::internal(format!("encoding image: {e}")))
        }
    }
    /// `GET /images/{name}/history`.
    fn image_history(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<ImageHistoryResponseItem>, Error>> + Send;
    /// `POST /images/{name}/tag`.
    fn image_tag(
        &self,
        name: &str,
        repo: &str,
        tag: Option<&str>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// `DELETE /images/{name}`.
    fn image_remove(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> impl Future<Output = Result<Vec<ImageDeleteResponseItem>, Error>> + Send;
    /// `POST /images/create?fromSrc=-`: imports the tarball in `body` (possibly compressed),
    /// reporting progress; the last item's `status` is the new image id.
    fn image_import(
        &self,
        opts: ImportOptions,
        body: ByteStream,
    ) -> impl Future<Output = Result<ItemStream<CreateImageInfo>, Error>> + Send;
    /// `POST /images/create?fromImage=…`: pulls, reporting progress.
    /// Makes a base image from the host's packages; a progress stream like a pull's.
    fn image_bootstrap(
        &self,
        opts: BootstrapOptions,
    ) -> impl Future<Output = Result<ItemStream<CreateImageInfo>, Error>> + Send {
        let _ = opts;
        async {
            Err(Error::not_implemented(
                "image bootstrap is not supported by this daemon",
            ))
        }
    }
    fn image_pull(
        &self,
        opts: PullOptions,
    ) -> impl Future<Output = Result<ItemStream<CreateImageInfo>, Error>> + Send;
    /// `GET /images/{name}/get`, `GET /images/get?names=…`: the images as a `docker save`
    /// tar stream. Errors found before the first byte (an unknown image) are returned as such.
    fn image_save(
        &self,
        names: Vec<String>,
        oci: bool,
    ) -> impl Future<Output = Result<ByteStream, Error>> + Send {
        let _ = (names, oci);
        async { Err(Error::not_implemented("image save is not supported")) }
    }
    /// `POST /images/load`: loads the archive in `body`; the whole load is done (or has
    /// failed, leaving nothing behind) before the stream of result lines starts.
    fn image_load(
        &self,
        quiet: bool,
        body: ByteStream,
    ) -> impl Future<Output = Result<ItemStream<LoadLine>, Error>> + Send {
        let _ = (quiet, body);
        async { Err(Error::not_implemented("image load is not supported")) }
    }
    /// `POST /images/prune`; filters `dangling`, `until`, `label`, `label!` only.
    fn image_prune(
        &self,
        filters: Filters,
    ) -> impl Future<Output = Result<ImagePruneResponse, Error>> + Send;
}

/// The volume endpoints (`/volumes/…`). `name` is a volume's full name. Every method has a
/// default answering 501, for daemons (and test fakes) without volumes.
pub trait VolumeBackend: Send + Sync + 'static {
    /// `GET /volumes`; filters are checked to be `dangling`, `driver`, `label`, `name`.
    fn volume_list(
        &self,
        filters: Filters,
    ) -> impl Future<Output = Result<VolumeListResponse, Error>> + Send {
        let _ = filters;
        async {
            Err(Error::not_implemented(
                "volumes are not supported by this daemon",
            ))
        }
    }
    /// `POST /volumes/create`; an existing name returns the existing volume.
    fn volume_create(
        &self,
        req: VolumeCreateRequest,
    ) -> impl Future<Output = Result<Volume, Error>> + Send {
        let _ = req;
        async {
            Err(Error::not_implemented(
                "volumes are not supported by this daemon",
            ))
        }
    }
    /// `GET /volumes/{name}`.
    fn volume_inspect(&self, name: &str) -> impl Future<Output = Result<Volume, Error>> + Send {
        let _ = name;
        async {
            Err(Error::not_implemented(
                "volumes are not supported by this daemon",
            ))
        }
    }
    /// `DELETE /volumes/{name}`: 409 while a container references it; `force` makes a
    /// missing volume no error.
    fn volume_remove(
        &self,
        name: &str,
        force: bool,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (name, force);
        async {
            Err(Error::not_implemented(
                "volumes are not supported by this daemon",
            ))
        }
    }
    /// `POST /volumes/prune`; filters `label`, `label!`, `all` (the route adds `all=true`
    /// for API versions before 1.42, which pruned named volumes too).
    fn volume_prune(
        &self,
        filters: Filters,
    ) -> impl Future<Output = Result<VolumePruneResponse, Error>> + Send {
        let _ = filters;
        async {
            Err(Error::not_implemented(
                "volumes are not supported by this daemon",
            ))
        }
    }
}

/// `/networks/…`. Every method defaults to 501 so backends without networks need not care.
pub trait NetworkBackend: Send + Sync + 'static {
    /// `GET /networks`; filters `dangling driver id label name scope type`.
    fn network_list(
        &self,
        filters: Filters,
    ) -> impl Future<Output = Result<Vec<Network>, Error>> + Send {
        let _ = filters;
        async { Err(Error::not_implemented("networks are not supported")) }
    }
    /// `GET /networks/{id}`.
    fn network_inspect(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<NetworkInspect, Error>> + Send {
        let _ = id;
        async { Err(Error::not_implemented("networks are not supported")) }
    }
    /// `POST /networks/create`.
    fn network_create(
        &self,
        req: NetworkCreateRequest,
    ) -> impl Future<Output = Result<NetworkCreateResponse, Error>> + Send {
        let _ = req;
        async { Err(Error::not_implemented("networks are not supported")) }
    }
    /// `DELETE /networks/{id}`.
    fn network_remove(&self, id: &str) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = id;
        async { Err(Error::not_implemented("networks are not supported")) }
    }
    /// `POST /networks/prune`.
    fn network_prune(
        &self,
        filters: Filters,
    ) -> impl Future<Output = Result<NetworkPruneResponse, Error>> + Send {
        let _ = filters;
        async { Err(Error::not_implemented("networks are not supported")) }
    }
    /// `POST /networks/{id}/connect`.
    fn network_connect(
        &self,
        id: &str,
        req: NetworkConnectRequest,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (id, req);
        async { Err(Error::not_implemented("networks are not supported")) }
    }
    /// `POST /networks/{id}/disconnect`.
    fn network_disconnect(
        &self,
        id: &str,
        req: NetworkDisconnectRequest,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (id, req);
        async { Err(Error::not_implemented("networks are not supported")) }
    }
}

/// Everything berthd serves.
pub trait Backend:
    SystemBackend + ContainerBackend + ExecBackend + ImageBackend + VolumeBackend + NetworkBackend
{
}
impl<
    T: SystemBackend + ContainerBackend + ExecBackend + ImageBackend + VolumeBackend + NetworkBackend,
> Backend for T
{
}
