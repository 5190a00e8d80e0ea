/* Key material for the parties' channel: a pre-shared key file, or a self-signed CA with a certificate per party. */
#define _GNU_SOURCE
#include "pinas_mpc.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

pinas_status pinas_chan_keygen_psk(pinas_ctx *ctx, const char *path) { return pinas_mpc_key_file_write(ctx, path); }

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v;
    X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, nid, value);
    int ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* A certificate for key named cn, signed by signer (issuer NULL: self-signed CA). New; NULL on error. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, EVP_PKEY *signer, X509 *issuer, int days)
{
    X509 *x = X509_new();
    BIGNUM *sn = BN_new();
    int ok = x && sn && X509_set_version(x, 2) && BN_rand(sn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(sn, X509_get_serialNumber(x)) && X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 86400L * days) && X509_set_pubkey(x, key);
    X509_NAME *n = ok ? X509_get_subject_name(x) : NULL;
    ok = ok && X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"pinas", -1, -1, 0) &&
         X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) &&
         X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n) &&
         add_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (ok && !issuer)
        ok = add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
    else if (ok)
        ok = add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(x, issuer, NID_key_usage, "critical,digitalSignature") &&
             add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth") &&
             add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    ok = ok && X509_sign(x, signer, NULL) > 0; /* Ed25519: no separate digest */
    BN_free(sn);
    if (!ok) X509_free(x);
    return ok ? x : NULL;
}

/* Writes a key (0600) or certificate (umask) as PEM to dir/name. */
static pinas_status write_pem(pinas_ctx *ctx, const char *dir, const char *name, EVP_PKEY *key, X509 *cert)
{
    BIO *b = BIO_new(BIO_s_mem());
    int ok = b && (key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_X509(b, cert));
    char *data = NULL;
    long len = ok ? BIO_get_mem_data(b, &data) : 0;
    char *path = pinas_path_join(dir, name);
    pinas_status s = !ok || !path ? pinas_error(ctx, PINAS_EINTERNAL, "%s/%s: cannot encode the PEM", dir, name)
                                  : pinas_file_write_atomic(ctx, path, data, (size_t)len,
                                                            key ? PINAS_FILE_SECRET : PINAS_FILE_PUBLIC);
    if (data && len > 0) OPENSSL_cleanse(data, (size_t)len);
    BIO_free(b);
    free(path);
    return s;
}

pinas_status pinas_chan_keygen_certs(pinas_ctx *ctx, const char *dir, int days)
{
    if (days < 1) return pinas_error(ctx, PINAS_EINVAL, "certificate validity: expected at least 1 day, got %d", days);
    pinas_status s = pinas_mkdir_p(ctx, dir);
    if (s) return s;
    EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    X509 *ca = ca_key ? make_cert(ca_key, "pinas CA", ca_key, NULL, days) : NULL;
    if (!ca) s = pinas_error(ctx, PINAS_EINTERNAL, "cannot make the CA certificate");
    if (!s) s = write_pem(ctx, dir, "ca.key", ca_key, NULL);
    if (!s) s = write_pem(ctx, dir, "ca.crt", NULL, ca);
    const char *names[2] = {"server", "client"};
    for (int i = 0; i < 2 && !s; i++) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        char cn[32], fk[32], fc[32];
        snprintf(cn, sizeof cn, "pinas %s", names[i]);
        snprintf(fk, sizeof fk, "%s.key", names[i]);
        snprintf(fc, sizeof fc, "%s.crt", names[i]);
        X509 *x = k ? make_cert(k, cn, ca_key, ca, days) : NULL;
        if (!x) s = pinas_error(ctx, PINAS_EINTERNAL, "cannot make the %s certificate", names[i]);
        if (!s) s = write_pem(ctx, dir, fk, k, NULL);
        if (!s) s = write_pem(ctx, dir, fc, NULL, x);
        X509_free(x);
        EVP_PKEY_free(k);
    }
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return s;
}
