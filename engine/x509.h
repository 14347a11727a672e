/* x509.h - certificates the engine issues, signed by the CA key inside the HSM.
 * The CA key is EC P-384; certificates are signed ecdsa-with-SHA384: the TBSCertificate
 * is built with OpenSSL, its digest signed with CKM_ECDSA, and the result checked with
 * the CA public key before it is returned. */
#ifndef RSSP_X509_H
#define RSSP_X509_H

#include <openssl/x509.h>

#include "hsm.h"
#include "rssp_err.h"

#define X509_DEFAULT_CA_SUBJECT "CN=rssp CA,O=rssp"
#define X509_MAX_DAYS 3650

/* Parses "K=V,K=V" (OpenSSL short names, no escapes) into a name. Returns 0 or
 * RSSP_E_INVAL; on success *namep is owned by the caller (X509_NAME_free). */
int x509_parse_subject(const char *subject, X509_NAME **namep) RSSP_WUR;

/* A name holding only commonName = cn (UTF-8, 1..64 characters). Same contract. */
int x509_cn_name(const char *cn, X509_NAME **namep) RSSP_WUR;

/* A signer's name: commonName = cn (UTF-8, 1..64 characters), serialNumber = serial
 * (PrintableString, 1..64 characters). Same contract. */
int x509_signer_name(const char *cn, const char *serial, X509_NAME **namep) RSSP_WUR;

/* Self-signed CA certificate for the key pair labelled ca_label whose public key is
 * pub: basicConstraints CA:TRUE, keyUsage keyCertSign+cRLSign (both critical), SKI.
 * Returns 0 or RSSP_E*; on success *certp is owned by the caller (X509_free). */
int x509_make_ca(struct hsm *h, struct hsm_session *s, const char *ca_label, EVP_PKEY *pub,
    const X509_NAME *subject, unsigned days, X509 **certp) RSSP_WUR;

/* End-entity certificate for pub, issued by ca (key labelled ca_label): subject,
 * validity now..now+days, random serial, keyUsage digitalSignature+nonRepudiation
 * (critical), basicConstraints CA:FALSE (critical), SKI, AKI. Same contract. */
int x509_issue(struct hsm *h, struct hsm_session *s, const char *ca_label, X509 *ca,
    EVP_PKEY *pub, const X509_NAME *subject, unsigned days, X509 **certp) RSSP_WUR;

#endif
