//! `berth`: the command line. Everything lives in the `berth_cli` library.

fn main() {
    std::process::exit(berth_cli::main(std::env::args_os().collect()));
}
