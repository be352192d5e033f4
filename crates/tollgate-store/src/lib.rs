//! SQL stores for tollgate (work in progress).
