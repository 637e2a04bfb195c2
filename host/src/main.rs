//! `patchbench`: the command-line front end. Logic lives in the library; each subcommand is
//! a module with a `Cmd` that parses its options and calls into it.

mod cmd;

use clap::Parser;

/// Benchmark harness for patch-based int8 CNN inference on microcontrollers.
#[derive(Parser)]
#[command(name = "patchbench", version, about)]
struct Cli {
    /// Board catalog files of your own, added to the built-in one (repeatable; also
    /// `PATCHBENCH_BOARDS=FILE[:FILE...]`). Same format as host/boards.toml.
    #[arg(long = "boards", global = true, value_name = "FILE")]
    catalogs: Vec<std::path::PathBuf>,
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> std::process::ExitCode {
    // `patchbench plan ... | head`: end quietly when the reader goes away, as other tools do,
    // instead of panicking on the failed write.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    patchbench::boards::add_catalogs(cli.catalogs);
    match cli.command.run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
