//! The commands, one file per area.

pub mod container;
pub mod cp;
pub mod image;
pub mod network;
pub mod prune;
pub mod run;
pub mod saveload;
pub mod system;
pub mod volume;

use crate::Failure;
use crate::cli::{Cmd, ContainerCmd, ImageCmd, NetworkCmd, SystemCmd, VolumeCmd};
use crate::client::{Client, enc};
use berth_api_types::Filters;

/// Runs one parsed command; `Ok` carries the exit code.
pub fn dispatch(c: &mut Client, cmd: Cmd) -> Result<i32, Failure> {
    match cmd {
        Cmd::Run(a) => run::run(c, a),
        Cmd::Create(a) => run::create(c, a),
        Cmd::Start(a) => run::start(c, a),
        Cmd::Stop(a) => container::stop(c, a, false),
        Cmd::Restart(a) => container::stop(c, a, true),
        Cmd::Kill(a) => container::kill(c, a),
        Cmd::Rm(a) => container::rm(c, a),
        Cmd::Ps(a) => container::ps(c, a),
        Cmd::Logs(a) => container::logs(c, a),
        Cmd::Exec(a) => run::exec(c, a),
        Cmd::Attach(a) => run::attach(c, a),
        Cmd::Inspect(a) => container::inspect(c, a, None),
        Cmd::Wait(a) => container::wait(c, a),
        Cmd::Top(a) => container::top(c, a),
        Cmd::Stats(a) => container::stats(c, a),
        Cmd::Pause(a) => container::simple(c, a, "pause"),
        Cmd::Unpause(a) => container::simple(c, a, "unpause"),
        Cmd::Rename(a) => container::rename(c, a),
        Cmd::Update(a) => container::update(c, a),
        Cmd::Events(a) => system::events(c, a),
        Cmd::Images(a) => image::images(c, a),
        Cmd::Tag(a) => image::tag(c, a),
        Cmd::Rmi(a) => image::rmi(c, a),
        Cmd::Import(a) => image::import(c, a),
        Cmd::Diff(a) => container::diff(c, a),
        Cmd::Commit(a) => container::commit(c, a),
        Cmd::Export(a) => container::export(c, a),
        Cmd::Cp(a) => cp::cp(c, a),
        Cmd::History(a) => image::history(c, a),
        Cmd::Save(a) => saveload::save(c, a),
        Cmd::Load(a) => saveload::load(c, a),
        Cmd::Info(a) => system::info(c, a),
        Cmd::Version(a) => system::version(c, a),
        Cmd::Container(cc) => match cc {
            ContainerCmd::Ls(a) => container::ps(c, a),
            ContainerCmd::Run(a) => run::run(c, a),
            ContainerCmd::Create(a) => run::create(c, a),
            ContainerCmd::Start(a) => run::start(c, a),
            ContainerCmd::Stop(a) => container::stop(c, a, false),
            ContainerCmd::Restart(a) => container::stop(c, a, true),
            ContainerCmd::Kill(a) => container::kill(c, a),
            ContainerCmd::Rm(a) => container::rm(c, a),
            ContainerCmd::Logs(a) => container::logs(c, a),
            ContainerCmd::Exec(a) => run::exec(c, a),
            ContainerCmd::Attach(a) => run::attach(c, a),
            ContainerCmd::Inspect(a) => container::inspect(c, a, Some("container")),
            ContainerCmd::Wait(a) => container::wait(c, a),
            ContainerCmd::Top(a) => container::top(c, a),
            ContainerCmd::Stats(a) => container::stats(c, a),
            ContainerCmd::Pause(a) => container::simple(c, a, "pause"),
            ContainerCmd::Unpause(a) => container::simple(c, a, "unpause"),
            ContainerCmd::Rename(a) => container::rename(c, a),
            ContainerCmd::Update(a) => container::update(c, a),
            ContainerCmd::Diff(a) => container::diff(c, a),
            ContainerCmd::Commit(a) => container::commit(c, a),
            ContainerCmd::Export(a) => container::export(c, a),
            ContainerCmd::Cp(a) => cp::cp(c, a),
            ContainerCmd::Prune(a) => prune::container_prune(c, a),
        },
        Cmd::Image(ic) => match ic {
            ImageCmd::Ls(a) => image::images(c, a),
            ImageCmd::Tag(a) => image::tag(c, a),
            ImageCmd::Rm(a) => image::rmi(c, a),
            ImageCmd::Import(a) => image::import(c, a),
            ImageCmd::Bootstrap(a) => image::bootstrap(c, a),
            ImageCmd::Inspect(a) => container::inspect(c, a, Some("image")),
            ImageCmd::History(a) => image::history(c, a),
            ImageCmd::Save(a) => saveload::save(c, a),
            ImageCmd::Load(a) => saveload::load(c, a),
            ImageCmd::Prune(a) => prune::image_prune(c, a),
        },
        Cmd::Volume(vc) => match vc {
            VolumeCmd::Create(a) => volume::create(c, a),
            VolumeCmd::Ls(a) => volume::ls(c, a),
            VolumeCmd::Inspect(a) => volume::inspect(c, a),
            VolumeCmd::Rm(a) => volume::rm(c, a),
            VolumeCmd::Prune(a) => volume::prune(c, a),
        },
        Cmd::Network(nc) => match nc {
            NetworkCmd::Create(a) => network::create(c, a),
            NetworkCmd::Ls(a) => network::ls(c, a),
            NetworkCmd::Inspect(a) => network::inspect(c, a),
            NetworkCmd::Rm(a) => network::rm(c, a),
            NetworkCmd::Prune(a) => network::prune(c, a),
            NetworkCmd::Connect(a) => network::connect(c, a),
            NetworkCmd::Disconnect(a) => network::disconnect(c, a),
        },
        Cmd::System(sc) => match sc {
            SystemCmd::Df(a) => prune::df(c, a),
            SystemCmd::Prune(a) => prune::system_prune(c, a),
            SystemCmd::Info(a) => system::info(c, a),
            SystemCmd::Events(a) => system::events(c, a),
        },
        Cmd::Completion(_) => Ok(0),
    }
}

/// `--filter a=b --filter c=d` as the API's JSON.
pub fn filters_query(f: &[String]) -> Result<Option<String>, Failure> {
    if f.is_empty() {
        return Ok(None);
    }
    let mut out = Filters::default();
    for x in f {
        let Some((k, v)) = x.split_once('=') else {
            return Err(Failure::new(
                125,
                format!(
                    "invalid argument \"{x}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)"
                ),
            ));
        };
        out.0
            .entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(Some(out.to_query()))
}

/// Runs `f` for each name, printing the name on success and errors on stderr; exit 1 if
/// any failed (docker's behaviour for multi-container commands).
pub fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> Result<(), Failure>,
    print_name: bool,
) -> Result<i32, Failure> {
    let mut errs = Vec::new();
    for n in names {
        match f(n) {
            Ok(()) => {
                if print_name {
                    println!("{n}");
                }
            }
            Err(e) => errs.push(e.msg),
        }
    }
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(Failure::new(1, errs.join("\n")))
    }
}

/// `/containers/<enc(name)>` + `rest`.
pub fn cpath(name: &str, rest: &str) -> String {
    format!("/containers/{}{rest}", enc(name))
}
