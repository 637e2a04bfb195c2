//! `patchbench`: the command-line front end. Logic lives in the library; each subcommand is
//! a module with a `Cmd` that parses its options and calls into it.

mod cmd;

use clap::Parser;

/// Benchmark harness for patch-based int8 CNN inference on microcontrollers.
#[derive(Parser)]
#[command(name = "patchbench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command.run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
