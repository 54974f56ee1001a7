int tt_loop_now(void);
int tt_h2_recv(void) { return tt_loop_now(); }
