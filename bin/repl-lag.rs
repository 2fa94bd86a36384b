fn main() -> std::process::ExitCode {
    pgdr_lag::cli::main()
}
