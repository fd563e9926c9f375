//! `berth-runtime`: berth's OCI runtime, with runc's command line.

fn main() {
    std::process::exit(berth_runtime::cli::main());
}
