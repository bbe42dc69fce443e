//! The user-space delay line: delay and loss for links where the kernel lacks `sch_netem`.
