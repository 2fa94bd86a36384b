fn main() -> std::process::ExitCode {
    pgdr_clone::cli::main()
}
