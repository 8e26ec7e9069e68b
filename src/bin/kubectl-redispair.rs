//! kubectl-redispair: the kubectl plugin (`kubectl redispair status|switchover|fence|unfence|
//! failover|backup|backups`). Parses the command line, runs it, prints the result or the error in words.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use redispair::plugin::{cli::Cli, client};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let terminal = std::io::stdout().is_terminal();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    match client::run(cli, terminal, no_color).await {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = stdout.write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
