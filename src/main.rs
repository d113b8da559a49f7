//! The `engine` executable: everything lives in the library; this only maps the result to an exit code.

// Mapping allocates and frees many small values per record; mimalloc does that in about half
// the instructions of the system allocator (measured on `engine preview`, see docs/running.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(engine::cli::main());
}
