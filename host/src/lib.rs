//! patchbench host library.
