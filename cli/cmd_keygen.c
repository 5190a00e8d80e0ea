/* `pinas keygen`: writes the channel's key material (a pre-shared key, or a CA and a certificate per party). */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_mpc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: pinas keygen (--psk FILE | --certs DIR [--days N]) [--force]\n\n"
           "Writes what `pinas party` needs to authenticate its peer over TLS 1.3, without the openssl CLI.\n\n"
           "  --psk FILE    a pre-shared key: 32 random bytes from the OS as 64 hex digits, mode 0600. Copy it\n"
           "                to the other party over a channel you trust; both run with --psk FILE.\n"
           "  --certs DIR   a self-signed CA and a certificate per party (Ed25519, PEM): DIR/ca.crt, ca.key,\n"
           "                server.crt, server.key, client.crt, client.key (keys 0600). The server runs with\n"
           "                --cert server.crt --key server.key --peer-ca ca.crt, the client with client.*; give\n"
           "                each party only its own key (ca.key signs new certificates: keep it offline).\n"
           "  --days N      validity of the certificates (default 365)\n"
           "  --force       replace existing files\n");
}

int pinas_cmd_keygen(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *psk = NULL, *certs = NULL;
    long days = 365;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--psk") && v) psk = argv[++i];
        else if (!strcmp(a, "--certs") && v) certs = argv[++i];
        else if (!strcmp(a, "--days") && v) {
            if (cli_parse_int("keygen", "--days", argv[++i], 1, 36500, &days)) return 2;
        } else if (!strcmp(a, "--force")) force = 1;
        else return cli_usage_error("keygen", a[0] == '-' ? "unknown option %s" : "unexpected argument %s", a);
    }
    if (!psk == !certs) return cli_usage_error("keygen", "give exactly one of --psk FILE and --certs DIR");
    if (psk && !force && access(psk, F_OK) == 0)
        return cli_usage_error("keygen", "%s exists (--force replaces it)", psk);
    if (certs && !force) {
        char *ca = pinas_path_join(certs, "ca.key");
        int exists = ca && access(ca, F_OK) == 0;
        free(ca);
        if (exists) return cli_usage_error("keygen", "%s/ca.key exists (--force replaces the CA and certificates)", certs);
    }
    pinas_status s = psk ? pinas_chan_keygen_psk(ctx, psk) : pinas_chan_keygen_certs(ctx, certs, (int)days);
    if (s) return cli_fail(ctx);
    if (pinas_ctx_log_level(ctx) <= PINAS_LOG_INFO)
        printf(psk ? "wrote %s (0600)\n" : "wrote %s/{ca,server,client}.{crt,key} (keys 0600)\n", psk ? psk : certs);
    return 0;
}
