/* The main function shared by the C unit tests: APR up, the suite run with TAP on stdout, the
 * exit status automake's driver expects. */
#ifndef SK_UNIT_MAIN_H
#define SK_UNIT_MAIN_H

#include <check.h>
#include <apr_general.h>

static int sk_unit_run(Suite *suite)
{
    if (apr_initialize() != APR_SUCCESS)
        return 2;
    SRunner *sr = srunner_create(suite);
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed == 0 ? 0 : 1;
}

#endif
