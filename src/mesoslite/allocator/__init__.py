"""The pure allocator: decides which framework is offered which agent's free resources."""
