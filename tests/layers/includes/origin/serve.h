int tt_serve(void);
