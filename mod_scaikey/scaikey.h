/* Shared declarations of mod_scaikey: the module record and the log helpers. */
#ifndef SK_SCAIKEY_H
#define SK_SCAIKEY_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

extern module AP_MODULE_DECLARE_DATA scaikey_module;

#define SK_HANDLER "scaikey"



/* Every log line carries a number an operator can grep: "SKnnnn: ". */
#define SKLOGNO(n) "SK" #n ": "
#endif
