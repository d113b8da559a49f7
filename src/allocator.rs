//! How the process's memory allocator is set up, once, before any thread starts.
//!
//! A run holds a bounded amount of live data (see `run::stage`), but what the operating system
//! counts is what the allocator keeps, and glibc's malloc keeps a lot more by default. It gives
//! a thread that finds the others' arenas busy an arena of its own (up to 8 per core), and
//! memory freed into an arena serves that arena only: tokio moves the stages' tasks between
//! worker threads, so a record allocated on one worker is freed on another and every arena
//! grows to near the run's peak of live data. Its threshold for serving a large block (a page
//! of the source, a request body) straight from the system also rises to the largest block
//! freed so far, after which such blocks are carved out of the arenas and leave holes in them.
//! So on glibc this asks for one arena, and a fixed threshold: a block of 128 KiB or more is
//! its own mapping, given back to the system when freed. Measured on the slow-target benchmark
//! (20,000 orders, release): 95 MiB peak with the defaults, 73 MiB with both (docs/running.md).
//! A second arena would cost about 16 MiB; the two workers rarely contend for the lock (each
//! thread's small-block cache takes most calls without it).
//!
//! Elsewhere (another C library, another system) the allocator is left as it is. This module is
//! the only place that talks to the allocator.

/// Set the allocator up; to be called at the very start of `main`, before the async runtime
/// starts its threads (an arena a thread already has stays its own).
pub fn configure() {
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

/// Arenas malloc may create.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 1;

/// Blocks of at least this many bytes are mapped on their own and unmapped when freed (setting
/// it also stops glibc from raising it, and its trim threshold, as large blocks are freed).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
