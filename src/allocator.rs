//! How the process's memory allocators are set up, once, before any thread starts.
//!
//! Rust's own allocations go to mimalloc (the `#[global_allocator]` below). A run makes many
//! small, short-lived blocks (the values of a parsed page, a record's fields, a request body)
//! and frees most of them on another worker thread than the one that made them. glibc's malloc
//! spent about a third of a run's CPU on them; mimalloc serves each thread from pages of its
//! own with a free list per page, and a block freed elsewhere goes back to its page's list.
//!
//! What the operating system counts is what the allocator keeps. mimalloc commits the memory of
//! a new arena eagerly by default, which put a slow-target run at 124 MiB peak; committed on
//! demand (option `arena_eager_commit` off) the same run peaks at 57-74 MiB, about what glibc
//! kept (docs/running.md, "Performance").
//!
//! The C libraries (SQLite, zstd) still allocate through the C library's malloc. On glibc that
//! one is asked for one arena and a fixed threshold: a block of 128 KiB or more is its own
//! mapping, given back to the system when freed; otherwise every thread that met a busy arena
//! would get one of its own, and each would keep its own high-water mark.
//!
//! This module is the only place that talks to the allocators.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_arena_eager_commit`, by its position in `mi_option_e` of the mimalloc
/// version that `libmimalloc-sys` 0.1.49 builds (v3, `include/mimalloc.h`): the crate does not
/// name it. Cargo.toml pins that version.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Set mimalloc up before the first allocation: the standard library allocates before `main`
/// starts, and mimalloc makes its first arena then, with the options it has at that moment. So
/// this runs among the program's constructors (`.init_array`, Linux and the other ELF systems),
/// which run before the standard library's set-up.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_MIMALLOC: extern "C" fn() = configure_mimalloc;

extern "C" fn configure_mimalloc() {
    // Safety: `mi_option_set` only sets one of mimalloc's options, and no other thread exists
    // yet. An option set before mimalloc reads its options keeps the value set.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
}

/// Set the C library's malloc up; to be called at the very start of `main`, before the async
/// runtime starts its threads (an arena a thread already has stays its own).
pub fn configure() {
    #[cfg(not(target_os = "linux"))]
    configure_mimalloc();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Safety: `mallopt` only sets malloc's parameters; it is called before any other thread
        // exists. A refusal (it returns 0) leaves the default, which is still correct.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

/// Arenas the C library's malloc may create.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 1;

/// Blocks of at least this many bytes are mapped on their own and unmapped when freed (setting
/// it also stops glibc from raising it, and its trim threshold, as large blocks are freed).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
