#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--version")) {
            printf("tether-c %s\n", TT_VERSION);
            return 0;
        }
        if (!strcmp(argv[i], "--help")) {
            printf("usage: c [--help] [--version]\n");
            return 0;
        }
    }
    fprintf(stderr, "c: not implemented yet\n");
    return 2;
}
