/** How the Comet readers hand out points: in pages, read as they are asked for. */

/** points per page */
export const POINTS_PAGE = 1000;

/** `points` in pages of `size` (the last one shorter), each read when the page before it has been taken. */
export async function* inPages<T>(points: AsyncIterable<T> | Iterable<T>, size = POINTS_PAGE): AsyncGenerator<T[]> {
  let page: T[] = [];
  for await (const point of points) {
    page.push(point);
    if (page.length >= size) {
      yield page;
      page = [];
    }
  }
  if (page.length > 0) yield page;
}
