int tt_fs_open(void);
int tt_px_front(void) { return tt_fs_open(); }
int tt_same_name = 1;
