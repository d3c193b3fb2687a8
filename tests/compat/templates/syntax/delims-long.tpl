<%= "a" %> <%= if true %>b<%= end %>
