/* Lookup tables shared inside src/rbac for validating and lower-casing names, actions and
 * scopes in one pass (constant data, not state). */
#ifndef KL_RBAC_ASCII_H
#define KL_RBAC_ASCII_H

/* Action, pattern-free name or principal byte: its lower case, or 0 if not allowed
 * (control, space, DEL, non-ASCII, '*'). */
extern const unsigned char kl_rbac_lc_name[256];
/* Scope byte: its lower case, '/' for '/', or 0 if a scope may not contain it. */
extern const unsigned char kl_rbac_lc_scope[256];

#endif
