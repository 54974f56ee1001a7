int tt_px_front_done(void);
int tt_px_tunnel_open(void);
