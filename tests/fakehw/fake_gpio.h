/*
 * Fake GPIO chips for build/tests/coldgated-fakehw (tests/fakehw/gpio.c):
 * the libgpiod 1.6 calls of sensors/gpio.c, wrapped with -Wl,--wrap.  With
 * COLDGATE_FAKEHW_GPIO naming a directory the chips, lines, levels and
 * edges live in files there (see tests/fakehw/README.md, "GPIO"); without
 * it every call goes to the real libgpiod.
 */
#ifndef COLDGATE_FAKE_GPIO_H
#define COLDGATE_FAKE_GPIO_H

#define FAKE_GPIO_ENV	"COLDGATE_FAKEHW_GPIO"
#define FAKE_GPIO_LINES	64		/* lines on every fake chip */

struct gpiod_chip;
struct gpiod_line;
struct gpiod_line_event;

struct gpiod_chip	*__wrap_gpiod_chip_open_lookup(const char *descr);
struct gpiod_chip	*__wrap_gpiod_chip_open_by_number(unsigned int num);
void			 __wrap_gpiod_chip_close(struct gpiod_chip *);
const char		*__wrap_gpiod_chip_name(struct gpiod_chip *);
const char		*__wrap_gpiod_chip_label(struct gpiod_chip *);
unsigned int		 __wrap_gpiod_chip_num_lines(struct gpiod_chip *);
struct gpiod_line	*__wrap_gpiod_chip_get_line(struct gpiod_chip *, unsigned int offset);
int			 __wrap_gpiod_line_request_both_edges_events_flags(struct gpiod_line *,
			    const char *consumer, int flags);
int			 __wrap_gpiod_line_request_output_flags(struct gpiod_line *,
			    const char *consumer, int flags, int default_val);
int			 __wrap_gpiod_line_event_get_fd(struct gpiod_line *);
int			 __wrap_gpiod_line_event_read_multiple(struct gpiod_line *,
			    struct gpiod_line_event *events, unsigned int num_events);
int			 __wrap_gpiod_line_get_value(struct gpiod_line *);
int			 __wrap_gpiod_line_set_value(struct gpiod_line *, int value);
void			 __wrap_gpiod_line_release(struct gpiod_line *);

#endif
