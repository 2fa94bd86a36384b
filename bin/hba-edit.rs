fn main() -> std::process::ExitCode {
    pgdr_hba::cli::main()
}
