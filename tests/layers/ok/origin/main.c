int tt_fs_open(void);
int main(void) { return tt_fs_open(); }
