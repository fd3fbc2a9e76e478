/* The admin UI's session table (gateway/ui_session.c): tokens are random and
 * found only while live, bound to the master key they were opened with,
 * closed by logout, evicted closest-to-expiry first when the table is full;
 * the password check; login throttling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/ui_session.h"

#define MASTER "sk-master-for-sessions"

static int setup(void **state)
{
    (void)state;
    yr_ui_sessions_reset();
    return 0;
}

static yr_str_t s_of(const char *t)
{
    return (yr_str_t){t, strlen(t)};
}

static void test_open_find_expire(void **state)
{
    (void)state;
    char tok[YR_UI_TOKEN_HEX + 1], csrf[YR_UI_TOKEN_HEX + 1], got[YR_UI_TOKEN_HEX + 1];
    char tok2[YR_UI_TOKEN_HEX + 1], csrf2[YR_UI_TOKEN_HEX + 1];
    assert_int_equal(yr_ui_session_open(MASTER, 1000, 5000, tok, csrf), 0);
    assert_int_equal(yr_ui_session_open(MASTER, 1000, 5000, tok2, csrf2), 0);
    assert_int_equal(strlen(tok), YR_UI_TOKEN_HEX);
    assert_string_not_equal(tok, tok2);
    assert_string_not_equal(tok, csrf);
    int64_t exp = 0;
    assert_true(yr_ui_session_find(s_of(tok), MASTER, 5999, got, &exp));
    assert_string_equal(got, csrf);
    assert_int_equal(exp, 6000);
    assert_false(yr_ui_session_find(s_of(tok), MASTER, 6000, NULL, NULL)); /* expired */
    assert_false(yr_ui_session_find(s_of(tok), MASTER, 2000, NULL, NULL)); /* and forgotten */
    char other[YR_UI_TOKEN_HEX + 1];
    memcpy(other, tok2, sizeof(other));
    other[0] = other[0] == 'a' ? 'b' : 'a';
    assert_false(yr_ui_session_find(s_of(other), MASTER, 2000, NULL, NULL));
    assert_false(yr_ui_session_find(s_of("short"), MASTER, 2000, NULL, NULL));
    assert_true(yr_ui_session_find(s_of(tok2), MASTER, 2000, NULL, NULL));
}

static void test_master_key_change_and_logout(void **state)
{
    (void)state;
    char tok[YR_UI_TOKEN_HEX + 1], csrf[YR_UI_TOKEN_HEX + 1];
    assert_int_equal(yr_ui_session_open(MASTER, 0, 60000, tok, csrf), 0);
    assert_false(yr_ui_session_find(s_of(tok), "sk-a-new-master-key", 1, NULL, NULL));
    assert_false(yr_ui_session_find(s_of(tok), MASTER, 1, NULL, NULL)); /* ended for good */
    assert_false(yr_ui_session_find(s_of(tok), NULL, 1, NULL, NULL));
    assert_int_equal(yr_ui_session_open(MASTER, 0, 60000, tok, csrf), 0);
    assert_true(yr_ui_session_find(s_of(tok), MASTER, 1, NULL, NULL));
    yr_ui_session_close(s_of(tok));
    assert_false(yr_ui_session_find(s_of(tok), MASTER, 1, NULL, NULL));
}

static void test_full_table_evicts_soonest(void **state)
{
    (void)state;
    char tok[YR_UI_MAX_SESSIONS + 1][YR_UI_TOKEN_HEX + 1], csrf[YR_UI_TOKEN_HEX + 1];
    for (int i = 0; i < YR_UI_MAX_SESSIONS; i++)
        assert_int_equal(
            yr_ui_session_open(MASTER, 0, 10000 + (i == 7 ? 0 : 1000 + i), tok[i], csrf), 0);
    assert_int_equal(yr_ui_session_open(MASTER, 0, 90000, tok[YR_UI_MAX_SESSIONS], csrf), 0);
    assert_false(yr_ui_session_find(s_of(tok[7]), MASTER, 1, NULL, NULL));
    for (int i = 0; i <= YR_UI_MAX_SESSIONS; i++)
        if (i != 7)
            assert_true(yr_ui_session_find(s_of(tok[i]), MASTER, 1, NULL, NULL));
}

static void test_password_and_throttle(void **state)
{
    (void)state;
    assert_true(yr_ui_password_ok(s_of(MASTER), MASTER));
    assert_false(yr_ui_password_ok(s_of(MASTER "x"), MASTER));
    assert_false(yr_ui_password_ok(s_of("sk-master"), MASTER));
    assert_false(yr_ui_password_ok(s_of(""), ""));
    assert_false(yr_ui_password_ok(s_of("anything"), NULL));
    int64_t t = 100000;
    for (int i = 0; i < YR_UI_LOGIN_FAILURES_PER_MIN; i++) {
        assert_true(yr_ui_login_allowed(t + i));
        yr_ui_login_failed(t + i);
    }
    assert_false(yr_ui_login_allowed(t + 30000));
    assert_true(yr_ui_login_allowed(t + 60000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_open_find_expire, setup),
        cmocka_unit_test_setup(test_master_key_change_and_logout, setup),
        cmocka_unit_test_setup(test_full_table_evicts_soonest, setup),
        cmocka_unit_test_setup(test_password_and_throttle, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
