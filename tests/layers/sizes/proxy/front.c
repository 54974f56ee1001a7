/* The client front. */
int tt_px_front(void) { return 0; }
