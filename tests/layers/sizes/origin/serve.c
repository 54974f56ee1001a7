/* size: ok */
int tt_serve(void) { return 0; }
