int tt_loop_now(void) { return 0; }
