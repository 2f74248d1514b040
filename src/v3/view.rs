pub const SWAP_GL_ITERS: usize = 16;
