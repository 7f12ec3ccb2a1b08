/* Special actions of the admin API (beyond the generic CRUD of api/crud.h). */
#ifndef SK_API_ADMIN_H
#define SK_API_ADMIN_H

#include "http/request.h"

#endif
