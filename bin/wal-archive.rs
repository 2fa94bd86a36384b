fn main() -> std::process::ExitCode {
    pgdr_docgen::register();
    pgdr_wal::cli::main()
}
