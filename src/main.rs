//! The `engine` executable: everything lives in the library; this only maps the result to an exit code.

fn main() {
    std::process::exit(engine::cli::main());
}
