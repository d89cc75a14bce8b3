#version 330 core
// Writes the provoking vertex's colour: every corner of a face carries the same label.
flat in vec4 label_color;
out vec4 frag_color;
void main()
{
    frag_color = label_color;
}
