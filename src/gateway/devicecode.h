/* The device-code flow: the devicecode endpoint, its verification page and the token
 * endpoint's device_code grant (kl_devicecode_redeem, declared in sts_internal.h). This
 * file holds the grant's stub until the flow lands. */
#ifndef KL_GATEWAY_DEVICECODE_H
#define KL_GATEWAY_DEVICECODE_H

#include "gateway/sts_internal.h"

#endif
