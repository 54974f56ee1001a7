int tt_px_front(void);
int main(void) { return tt_px_front(); }
