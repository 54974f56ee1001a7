int tt_loop(void);
