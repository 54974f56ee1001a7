int tt_fs_open(void) { return 0; }
int tt_same_name = 2;
