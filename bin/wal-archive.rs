fn main() -> std::process::ExitCode {
    pgdr_wal::cli::main()
}
