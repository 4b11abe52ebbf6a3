#ifndef MK_CORE_LIST_H
#define MK_CORE_LIST_H

#include <stddef.h>

/* Intrusive circular doubly linked list, Linux style. An empty list points
 * to itself. Embed `struct mk_list _head` in the element and walk with
 * mk_list_foreach / mk_list_entry. */
struct mk_list {
    struct mk_list *prev;
    struct mk_list *next;
};

#define mk_container_of(ptr, type, member) \
    ((type *) ((char *) (ptr) - offsetof(type, member)))
#define mk_list_entry(ptr, type, member) mk_container_of(ptr, type, member)

static inline void mk_list_init(struct mk_list *list)
{
    list->prev = list;
    list->next = list;
}

static inline int mk_list_is_empty(const struct mk_list *list)
{
    return list->next == list;
}

/* Append `item` at the tail of `head`. */
static inline void mk_list_add(struct mk_list *item, struct mk_list *head)
{
    item->prev = head->prev;
    item->next = head;
    head->prev->next = item;
    head->prev = item;
}

/* Insert `item` at the front of `head`. */
static inline void mk_list_add_head(struct mk_list *item, struct mk_list *head)
{
    item->next = head->next;
    item->prev = head;
    head->next->prev = item;
    head->next = item;
}

/* Unlink `item`; it is left self-linked so a second del is harmless. */
static inline void mk_list_del(struct mk_list *item)
{
    item->prev->next = item->next;
    item->next->prev = item->prev;
    item->prev = item;
    item->next = item;
}

static inline size_t mk_list_size(const struct mk_list *head)
{
    size_t n = 0;
    const struct mk_list *it;
    for (it = head->next; it != head; it = it->next) {
        n++;
    }
    return n;
}

#define mk_list_foreach(curr, head) \
    for (curr = (head)->next; curr != (head); curr = curr->next)

/* Safe against deletion of `curr` inside the loop body. */
#define mk_list_foreach_safe(curr, n, head) \
    for (curr = (head)->next, n = curr->next; curr != (head); \
         curr = n, n = curr->next)

#endif
