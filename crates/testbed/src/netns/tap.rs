//! TAP devices opened inside a namespace (the ends of a user-space delay line).
