int tt_y(void);
