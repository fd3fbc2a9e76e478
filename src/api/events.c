#include "api/events.h"

const char *yr_finish_openai(yr_finish_t f)
{
    switch (f) {
    case YR_FINISH_LENGTH: return "length";
    case YR_FINISH_TOOL_CALLS: return "tool_calls";
    case YR_FINISH_CONTENT_FILTER: return "content_filter";
    case YR_FINISH_STOP:
    default: return "stop";
    }
}
