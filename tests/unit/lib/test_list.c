/* Unit tests for the intrusive circular lists. */
#include "lib/lib.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

struct item {
	int value;
	struct list link;
};

#define ITEM(l) CAIRN_CONTAINER_OF(l, struct item, link)

static void make_items(struct item *items, int n)
{
	for (int i = 0; i < n; i++) {
		items[i].value = i + 1;
		list_init(&items[i].link);
	}
}

/* Walks the list forwards and backwards and checks both against want. */
static void assert_values(const struct list *head, const int *want, size_t n)
{
	const struct list *l;
	size_t i = 0;

	assert_int_equal(list_count(head), n);
	for (l = head->next; l != head; l = l->next) {
		assert_true(i < n);
		assert_int_equal(ITEM(l)->value, want[i]);
		assert_ptr_equal(l->next->prev, l);
		i++;
	}
	assert_int_equal(i, n);
	for (l = head->prev; l != head; l = l->prev) {
		assert_true(i > 0);
		i--;
		assert_int_equal(ITEM(l)->value, want[i]);
	}
	assert_int_equal(i, 0);
}

static void test_list_init_is_empty_and_self_linked(void **state)
{
	struct list head;

	(void)state;
	list_init(&head);
	assert_true(list_is_empty(&head));
	assert_ptr_equal(head.next, &head);
	assert_ptr_equal(head.prev, &head);
	assert_int_equal(list_count(&head), 0);
}

static void test_list_insert_tail_keeps_insertion_order(void **state)
{
	struct list head;
	struct item items[3];
	const int want[] = {1, 2, 3};

	(void)state;
	list_init(&head);
	make_items(items, 3);
	for (int i = 0; i < 3; i++)
		list_insert_tail(&head, &items[i].link);
	assert_false(list_is_empty(&head));
	assert_values(&head, want, 3);
}

static void test_list_insert_head_reverses_insertion_order(void **state)
{
	struct list head;
	struct item items[3];
	const int want[] = {3, 2, 1};

	(void)state;
	list_init(&head);
	make_items(items, 3);
	for (int i = 0; i < 3; i++)
		list_insert_head(&head, &items[i].link);
	assert_values(&head, want, 3);
}

static void test_list_mixed_inserts_place_items_at_both_ends(void **state)
{
	struct list head;
	struct item items[4];
	const int want[] = {4, 2, 1, 3};

	(void)state;
	list_init(&head);
	make_items(items, 4);
	list_insert_tail(&head, &items[0].link);
	list_insert_head(&head, &items[1].link);
	list_insert_tail(&head, &items[2].link);
	list_insert_head(&head, &items[3].link);
	assert_values(&head, want, 4);
}

static void test_list_remove_unlinks_middle_item(void **state)
{
	struct list head;
	struct item items[3];
	const int want[] = {1, 3};

	(void)state;
	list_init(&head);
	make_items(items, 3);
	for (int i = 0; i < 3; i++)
		list_insert_tail(&head, &items[i].link);
	list_remove(&items[1].link);
	assert_values(&head, want, 2);
	assert_true(list_is_empty(&items[1].link));
}

static void test_list_remove_twice_is_harmless(void **state)
{
	struct list head;
	struct item items[3];
	const int want[] = {1, 3};

	(void)state;
	list_init(&head);
	make_items(items, 3);
	for (int i = 0; i < 3; i++)
		list_insert_tail(&head, &items[i].link);
	list_remove(&items[1].link);
	list_remove(&items[1].link);
	assert_values(&head, want, 2);
	assert_ptr_equal(items[1].link.next, &items[1].link);
	assert_ptr_equal(items[1].link.prev, &items[1].link);
}

static void test_list_removed_item_can_be_inserted_again(void **state)
{
	struct list head;
	struct item items[3];
	const int want[] = {2, 3, 1};

	(void)state;
	list_init(&head);
	make_items(items, 3);
	for (int i = 0; i < 3; i++)
		list_insert_tail(&head, &items[i].link);
	list_remove(&items[0].link);
	list_insert_tail(&head, &items[0].link);
	assert_values(&head, want, 3);
}

static void test_list_pop_head_on_empty_returns_null(void **state)
{
	struct list head;

	(void)state;
	list_init(&head);
	assert_null(list_pop_head(&head));
	assert_true(list_is_empty(&head));
}

static void test_list_pop_head_returns_items_in_order_then_null(void **state)
{
	struct list head;
	struct item items[3];
	struct list *l;

	(void)state;
	list_init(&head);
	make_items(items, 3);
	for (int i = 0; i < 3; i++)
		list_insert_tail(&head, &items[i].link);
	for (int i = 0; i < 3; i++) {
		l = list_pop_head(&head);
		assert_ptr_equal(l, &items[i].link);
		assert_true(list_is_empty(l));
		assert_int_equal(list_count(&head), (size_t)(2 - i));
	}
	assert_null(list_pop_head(&head));
	assert_true(list_is_empty(&head));
}

static void
test_list_foreach_safe_allows_removing_the_current_item(void **state)
{
	struct list head, *l, *tmp;
	struct item items[6];
	const int want[] = {1, 3, 5};

	(void)state;
	list_init(&head);
	make_items(items, 6);
	for (int i = 0; i < 6; i++)
		list_insert_tail(&head, &items[i].link);
	LIST_FOREACH_SAFE (l, tmp, &head) {
		if (ITEM(l)->value % 2 == 0)
			list_remove(l);
	}
	assert_values(&head, want, 3);
}

static void
test_list_foreach_safe_removing_every_item_empties_list(void **state)
{
	struct list head, *l, *tmp;
	struct item items[4];
	int visited = 0;

	(void)state;
	list_init(&head);
	make_items(items, 4);
	for (int i = 0; i < 4; i++)
		list_insert_tail(&head, &items[i].link);
	LIST_FOREACH_SAFE (l, tmp, &head) {
		assert_int_equal(ITEM(l)->value, ++visited);
		list_remove(l);
	}
	assert_int_equal(visited, 4);
	assert_true(list_is_empty(&head));
	assert_int_equal(list_count(&head), 0);
}

static void test_list_foreach_visits_each_item_once_in_order(void **state)
{
	struct list head, *l;
	struct item items[5];
	int visited = 0;

	(void)state;
	list_init(&head);
	make_items(items, 5);
	for (int i = 0; i < 5; i++)
		list_insert_tail(&head, &items[i].link);
	LIST_FOREACH (l, &head) {
		assert_int_equal(ITEM(l)->value, ++visited);
	}
	assert_int_equal(visited, 5);
}

static void test_list_count_counts_many_items(void **state)
{
	struct list head;
	static struct item items[1000];

	(void)state;
	list_init(&head);
	make_items(items, 1000);
	for (int i = 0; i < 1000; i++)
		list_insert_tail(&head, &items[i].link);
	assert_int_equal(list_count(&head), 1000);
	list_remove(&items[500].link);
	assert_int_equal(list_count(&head), 999);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_list_init_is_empty_and_self_linked),
	        cmocka_unit_test(test_list_insert_tail_keeps_insertion_order),
	        cmocka_unit_test(
	                test_list_insert_head_reverses_insertion_order),
	        cmocka_unit_test(
	                test_list_mixed_inserts_place_items_at_both_ends),
	        cmocka_unit_test(test_list_remove_unlinks_middle_item),
	        cmocka_unit_test(test_list_remove_twice_is_harmless),
	        cmocka_unit_test(test_list_removed_item_can_be_inserted_again),
	        cmocka_unit_test(test_list_pop_head_on_empty_returns_null),
	        cmocka_unit_test(
	                test_list_pop_head_returns_items_in_order_then_null),
	        cmocka_unit_test(
	                test_list_foreach_safe_allows_removing_the_current_item),
	        cmocka_unit_test(
	                test_list_foreach_safe_removing_every_item_empties_list),
	        cmocka_unit_test(
	                test_list_foreach_visits_each_item_once_in_order),
	        cmocka_unit_test(test_list_count_counts_many_items),
	};

	return cmocka_run_group_tests_name("lib/list", tests, NULL, NULL);
}
