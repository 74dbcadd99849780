/* ws.c - WebSocket handshake values (ws.h). */
#include "ws.h"

#include <openssl/evp.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "common.h"

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static bool b64char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

bool cr_ws_key_valid(const char *key, size_t len)
{
    if (len != CR_WS_KEY_LEN || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!b64char(key[i]))
            return false;
    /* the last character before the padding carries 2 bits: its low four are 0 */
    return strchr("AQgw", key[21]) != NULL;
}

int cr_ws_accept(const char *key, size_t len, char out[CR_WS_ACCEPT_LEN + 1])
{
    unsigned char in[128], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (len > sizeof(in) - (sizeof(GUID) - 1))
        len = sizeof(in) - (sizeof(GUID) - 1); /* a valid key is 24 bytes */
    memcpy(in, key, len);
    memcpy(in + len, GUID, sizeof(GUID) - 1);
    if (EVP_Digest(in, len + sizeof(GUID) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        return CR_ENOMEM;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 characters and a NUL */
    return 0;
}

int cr_ws_new_key(char out[CR_WS_KEY_LEN + 1])
{
    unsigned char raw[16];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return CR_EIO;
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw));
    return 0;
}

bool cr_ws_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    for (const char *p = v; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0)
            return true;
        p = e;
    }
    return false;
}
