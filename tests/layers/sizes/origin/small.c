int tt_small(void) { return 0; }
