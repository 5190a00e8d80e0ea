/* Tests for pinas_machine_mismatch: the warning when a profile was fitted on another CPU model. */
#include <string.h>

#include "testutil.h"

static void test_other_cpu(void)
{
    char here[256], msg[512];
    pinas_machine_cpu_model(here, sizeof here);
    CU_ASSERT(here[0] != 0); /* Linux: /proc/cpuinfo's model name, else uname's machine */
    CU_ASSERT_EQUAL(pinas_machine_mismatch("cpu", "Imaginary CPU 9999 @ 1 Hz", "2026-01-02T03:04:05Z", msg, sizeof msg), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "hardware profile cpu was fitted on \"Imaginary CPU 9999 @ 1 Hz\" (2026-01-02T03:04:05Z)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, here));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "run `pinas calibrate` here"));
    /* no date: no empty parentheses */
    CU_ASSERT_EQUAL(pinas_machine_mismatch("cpu", "Imaginary CPU", NULL, msg, sizeof msg), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "fitted on \"Imaginary CPU\"; this machine is"));
    /* cut to the buffer, still NUL-terminated */
    CU_ASSERT_EQUAL(pinas_machine_mismatch("cpu", "Imaginary CPU", NULL, msg, 10), 1);
    CU_ASSERT_EQUAL(strlen(msg), 9);
}

static void test_same_or_unknown(void)
{
    char here[256], msg[512];
    pinas_machine_cpu_model(here, sizeof here);
    strcpy(msg, "stale");
    CU_ASSERT_EQUAL(pinas_machine_mismatch("cpu", here, "2026-01-02T03:04:05Z", msg, sizeof msg), 0);
    CU_ASSERT_STRING_EQUAL(msg, "");
    CU_ASSERT_EQUAL(pinas_machine_mismatch("pasnet", NULL, NULL, msg, sizeof msg), 0); /* a profile with no cpu_model */
    CU_ASSERT_EQUAL(pinas_machine_mismatch("cpu", "", NULL, msg, sizeof msg), 0);
    CU_ASSERT_STRING_EQUAL(msg, "");
}

int main(void)
{
    tu_test t[] = {{"a profile fitted on another CPU model warns", test_other_cpu},
                   {"the same CPU model, or an unknown one, does not", test_same_or_unknown}};
    return tu_run("common_machine", t, 2);
}
