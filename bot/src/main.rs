//! The `erlmcp-bot` binary: all logic is in the library, so tests can run the same commands.

fn main() -> std::process::ExitCode {
    erlmcp_bot::cli::main()
}
